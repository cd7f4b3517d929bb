// `nudge client`: sends messages from a file or stdin over the WebSocket stream
// (API.md section 3) and prints every reply as one line of JSON on stdout.
//
// Input: one JSON message per line; blank lines and lines starting with '#' are skipped.
// A line that is not valid JSON is still sent as it is (a text frame, or in MessagePack
// mode a binary frame of its raw bytes) so that the server's error reply shows. In
// MessagePack mode every valid line is converted to a MessagePack map and sent as a
// binary frame; binary replies are converted back to JSON for printing.
//
// It sends every line, then waits until each message has had its reply, matched by id;
// an error reply with "id": null answers a line whose id could not be read. Other frames
// (pushes, "id": null) are printed but not counted. Messages on stderr only.
//
// Thread: run_client blocks the calling thread until done and uses no other thread.
#pragma once

#include <chrono>
#include <string>

namespace nudge::app {

struct client_options {
  // ws://HOST[:PORT][/PATH][?QUERY]; the path defaults to /v1/stream, the port to 80.
  // wss:// is refused ("wss not supported yet").
  std::string url;
  // The write key; when set it is appended as ?key=KEY (&key=KEY when the URL already
  // has a query), percent-encoded.
  std::string key;
  // One JSON message per line; empty or "-" reads stdin.
  std::string input_file;
  // Send MessagePack binary frames instead of JSON text frames.
  bool msgpack = false;
  // Give up when this long passes with no reply (and no write) while replies are due.
  std::chrono::milliseconds reply_timeout{5000};
};

/// Returns the process exit code: 0 when every message got its reply; 1 on a connection
/// failure (stderr names the URL and the error, e.g. HTTP 401 from the upgrade), a
/// connection lost early, or a reply timeout; 2 on bad usage (a malformed or wss URL, an
/// unreadable input file). Never throws.
int run_client(const client_options& options);

} // namespace nudge::app

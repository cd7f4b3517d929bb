// client_probe: app/client.cpp behind a minimal command line, so that the client builds
// and runs on its own (nudge_app links the same file into `nudge client`).
// Usage: client_probe URL [FILE] [--key KEY] [--msgpack] [--timeout-ms N]
#include "app/client.hpp"

#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

int main(int argc, char** argv) {
  nudge::app::client_options options;
  int positional = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--key" && i + 1 < argc) {
      options.key = argv[++i];
    } else if (arg == "--msgpack") {
      options.msgpack = true;
    } else if (arg == "--timeout-ms" && i + 1 < argc) {
      options.reply_timeout = std::chrono::milliseconds(std::atol(argv[++i]));
    } else if (positional == 0 && !arg.starts_with("--")) {
      options.url = arg;
      ++positional;
    } else if (positional == 1 && (arg == "-" || !arg.starts_with("--"))) {
      options.input_file = arg;
      ++positional;
    } else {
      std::cerr << "usage: client_probe URL [FILE] [--key KEY] [--msgpack] [--timeout-ms N]\n";
      return 2;
    }
  }
  if (options.url.empty()) {
    std::cerr << "usage: client_probe URL [FILE] [--key KEY] [--msgpack] [--timeout-ms N]\n";
    return 2;
  }
  return nudge::app::run_client(options);
}

// TLS ([server] tls_cert/tls_key): the real binary serves https:// and wss:// only,
// with a self-signed certificate made by the test (OpenSSL), and refuses to start on
// a certificate it cannot read.
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <utility>

#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <fstream>

using namespace nudge::test;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

/// Writes a fresh RSA key and a self-signed certificate for 127.0.0.1 as PEM files.
void make_self_signed(const std::filesystem::path& cert, const std::filesystem::path& key) {
  EVP_PKEY* pkey = EVP_RSA_gen(2048);
  REQUIRE(pkey);
  X509* x = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, pkey);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  REQUIRE(X509_sign(x, pkey, EVP_sha256()) > 0);
  FILE* f = std::fopen(cert.c_str(), "w");
  REQUIRE(f);
  PEM_write_X509(f, x);
  std::fclose(f);
  f = std::fopen(key.c_str(), "w");
  REQUIRE(f);
  PEM_write_PrivateKey(f, pkey, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  X509_free(x);
  EVP_PKEY_free(pkey);
}

struct tls_server {
  temp_dir dir;
  std::filesystem::path cert = dir.path / "cert.pem";
  std::filesystem::path key = dir.path / "key.pem";
  std::unique_ptr<server_process> srv;

  tls_server() {
    make_self_signed(cert, key);
    auto config = dir.path / "nudge.toml";
    std::ofstream(config) << "[server]\ntls_cert = \"" << cert.string() << "\"\ntls_key = \"" << key.string()
                          << "\"\n\n[[sources]]\nid = \"web\"\nkind = \"stream\"\nwrite_key = \"wk_tls\"\nchannel = \"web\"\n";
    srv = std::make_unique<server_process>(dir.path / "data", std::vector<std::string>{"--config", config.string()});
  }
};

/// A client TLS context that trusts exactly the test's certificate.
asio::ssl::context client_context(const std::filesystem::path& cert) {
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.load_verify_file(cert.string());
  ctx.set_verify_mode(asio::ssl::verify_peer);
  return ctx;
}

/// GET `target` over https; the status, or 0 when TLS or HTTP failed. Bounded by 10 s.
int https_get(int port, const std::filesystem::path& cert, const std::string& target, std::string* body = nullptr) {
  asio::io_context ioc;
  auto ctx = client_context(cert);
  beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
  http::request<http::string_body> req{http::verb::get, target, 11};
  req.set(http::field::host, "127.0.0.1");
  http::response<http::string_body> res;
  beast::flat_buffer buf;
  int status = 0;
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
  beast::get_lowest_layer(stream).async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)),
    [&](beast::error_code ec) {
      if (ec) return;
      stream.async_handshake(asio::ssl::stream_base::client, [&](beast::error_code ec) {
        if (ec) return;
        http::async_write(stream, req, [&](beast::error_code ec, std::size_t) {
          if (ec) return;
          http::async_read(stream, buf, res, [&](beast::error_code ec, std::size_t) {
            if (!ec) status = static_cast<int>(res.result_int());
          });
        });
      });
    });
  ioc.run_for(std::chrono::seconds(12));
  if (body)
    *body = res.body();
  return status;
}

}  // namespace

TEST_CASE("with tls_cert and tls_key the service speaks https:// and wss:// only", "[tls][integration]") {
  tls_server s;
  CHECK(s.srv->output().find("listening on https://127.0.0.1:") != std::string::npos);
  std::string body;
  CHECK(https_get(s.srv->port(), s.cert, "/healthz", &body) == 200);
  CHECK(body.find("ok") != std::string::npos);

  // wss: an event over the stream is answered with a decision.
  asio::io_context ioc;
  auto ctx = client_context(s.cert);
  websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws(ioc, ctx);
  beast::flat_buffer buf;
  std::string reply;
  const std::string event = R"({"type":"event","id":"t-1","name":"page_view","identities":{"anonymous_id":"a-tls"}})";
  beast::get_lowest_layer(ws).expires_after(std::chrono::seconds(10));
  beast::get_lowest_layer(ws).async_connect(
    tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(s.srv->port())), [&](beast::error_code ec) {
      if (ec) return;
      ws.next_layer().async_handshake(asio::ssl::stream_base::client, [&](beast::error_code ec) {
        if (ec) return;
        beast::get_lowest_layer(ws).expires_never();
        ws.async_handshake("127.0.0.1", "/v1/stream?key=wk_tls", [&](beast::error_code ec) {
          if (ec) return;
          ws.async_write(asio::buffer(event), [&](beast::error_code ec, std::size_t) {
            if (ec) return;
            ws.async_read(buf, [&](beast::error_code ec, std::size_t) {
              if (!ec) reply = beast::buffers_to_string(buf.data());
            });
          });
        });
      });
    });
  ioc.run_for(std::chrono::seconds(12));
  REQUIRE(!reply.empty());
  auto d = parse(reply);
  CHECK(std::string(d["type"].GetString()) == "decision");
  CHECK(std::string(d["id"].GetString()) == "t-1");

  // Plain HTTP on the TLS port gets no HTTP answer.
  auto plain = http_call(s.srv->port(), "GET", "/healthz");
  CHECK(plain.status == 0);
  // The service is still serving TLS afterwards.
  CHECK(https_get(s.srv->port(), s.cert, "/readyz") == 200);
}

TEST_CASE("an unreadable certificate stops the start with a clear error", "[tls][integration][config]") {
  temp_dir dir;
  auto config = dir.path / "nudge.toml";
  std::ofstream(config) << "[server]\ntls_cert = \"" << (dir.path / "missing.pem").string() << "\"\ntls_key = \""
                        << (dir.path / "missing-key.pem").string() << "\"\n";
  std::string out;
  int status = run_nudge({"serve", "--listen", "127.0.0.1:0", "--data", (dir.path / "data").string(), "--config", config.string()}, out);
  CHECK(status != 0);
  CHECK(out.find("TLS") != std::string::npos);
}

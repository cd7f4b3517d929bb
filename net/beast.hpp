// The one place that includes Boost.Beast/Asio (Boost 1.74 with g++ 12 in C++20
// needs <utility> first). Only net/*.cpp include it.
#pragma once

#include <utility>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

namespace nudge::net {
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;
namespace asio = boost::asio;
using tcp = boost::asio::ip::tcp;
/// A connection's socket and stream run on their I/O thread's io_context, named by its
/// own executor type rather than asio's type-erased any_io_executor: a completion is
/// then dispatched without the erased executor's function object (an allocation when
/// asio's per-thread cache is taken) and its virtual calls.
using io_executor = asio::io_context::executor_type;
using tcp_socket = asio::basic_stream_socket<tcp, io_executor>;
using tcp_stream = beast::basic_stream<tcp, io_executor>;
}  // namespace nudge::net

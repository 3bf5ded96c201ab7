// A broadcast server with uWebSockets (C++), written the usual way for it:
// every client subscribes to one topic, and every text message a client
// sends is published to it (the sender included, like the other peers).
// One thread, no compression, no TLS. Built by bench/chat/run.sh from the
// source tree UWS_DIR names (with its uSockets), outside this tree:
//   g++ -std=c++20 -O2 -I$UWS_DIR/src -I$UWS_DIR/uSockets/src \
//       uws_broadcast.cpp $UWS_DIR/uSockets/*.o -lz -o uws_broadcast
// Usage: uws_broadcast PORT   (0: any free port)
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "App.h"

namespace {
struct Member {};
}  // namespace

int main(int argc, char **argv) {
  int port = argc > 1 ? std::atoi(argv[1]) : 0;
  uWS::App app;
  app.ws<Member>("/ws", {
                            .compression = uWS::DISABLED,
                            .maxPayloadLength = 1 << 20,
                            .idleTimeout = 0,
                            .maxBackpressure = 64 << 20,
                            .open = [](auto *ws) { ws->subscribe("room"); },
                            .message =
                                [&app](auto *, std::string_view message, uWS::OpCode op) {
                                  app.publish("room", message, op);
                                },
                        })
      .listen("127.0.0.1", port, [](us_listen_socket_t *ls) {
        if (ls == nullptr) {
          std::fprintf(stderr, "cannot listen\n");
          std::exit(1);
        }
        std::fprintf(stderr, "listening on 127.0.0.1:%d\n",
                     us_socket_local_port(0, (us_socket_t *)ls));
      });
  app.run();
  return 0;
}

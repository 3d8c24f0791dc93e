// Helpers for the real-IO tests: temporary directories and raw sockets that play a
// misbehaving peer (resets, half-open connections) outside the code under test.
#pragma once

#include <cstdint>
#include <string>

namespace keel::realio_test {

// A fresh directory under /tmp, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A blocking IPv4 TCP socket connected to 127.0.0.1:port; aborts the test on failure.
int raw_connect(uint16_t port);
// A blocking IPv4 listening socket on 127.0.0.1 at a free port; returns the fd, sets *port.
int raw_listen(uint16_t* port);
// Accepts one connection on a blocking listening socket.
int raw_accept(int listen_fd);
// Closes with SO_LINGER {on, 0}: the peer sees a reset (RST), not a FIN.
void raw_reset(int fd);
// Writes all of `data` (blocking).
void raw_write_all(int fd, const std::string& data);
// A port on 127.0.0.1 with nothing listening (bound, then released).
uint16_t unused_port();

}  // namespace keel::realio_test

#include "tests/realio/realio_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "base/check.h"

namespace keel::realio_test {
namespace {

sockaddr_in loopback(uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

}  // namespace

TempDir::TempDir() {
  char templ[] = "/tmp/keel-realio-XXXXXX";
  const char* made = mkdtemp(templ);
  KEEL_CHECK(made != nullptr, "mkdtemp: {}", std::strerror(errno));
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

int raw_connect(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  KEEL_CHECK(fd >= 0, "socket: {}", std::strerror(errno));
  const sockaddr_in addr = loopback(port);
  const int rc = connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  KEEL_CHECK(rc == 0, "connect: {}", std::strerror(errno));
  return fd;
}

int raw_listen(uint16_t* port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  KEEL_CHECK(fd >= 0, "socket: {}", std::strerror(errno));
  sockaddr_in addr = loopback(0);
  KEEL_CHECK(bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0);
  KEEL_CHECK(listen(fd, 16) == 0);
  socklen_t len = sizeof(addr);
  KEEL_CHECK(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  *port = ntohs(addr.sin_port);
  return fd;
}

int raw_accept(int listen_fd) {
  const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  KEEL_CHECK(fd >= 0, "accept: {}", std::strerror(errno));
  return fd;
}

void raw_reset(int fd) {
  linger lg{};
  lg.l_onoff = 1;
  lg.l_linger = 0;
  KEEL_CHECK(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0);
  close(fd);
}

void raw_write_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    KEEL_CHECK(n > 0, "write: {}", std::strerror(errno));
    done += size_t(n);
  }
}

uint16_t unused_port() {
  uint16_t port = 0;
  const int fd = raw_listen(&port);
  close(fd);
  return port;
}

}  // namespace keel::realio_test

// Upstream sockets that keep the client's address, for Node (which sets no IP_TRANSPARENT), and
// the one capability that needs once the proxy runs as its own uid. N-API only.
//
// transparentSocket(address, family[, udp]) -> fd: a TCP (or UDP) socket with IP_TRANSPARENT
// (IPV6_TRANSPARENT) bound to (address, 0): connect() then leaves from an address that need not be the node's own
// (Envoy's original_src / Cilium's proxy). The kernel checks CAP_NET_RAW or CAP_NET_ADMIN at the
// setsockopt; bind and connect need nothing more.
//
// keepTransparentCapability() before setuid and limitToTransparentCapability() after it: the
// calling thread keeps CAP_NET_RAW (permitted and effective) and nothing else. CAP_NET_RAW, not
// CAP_NET_ADMIN: the kernel accepts either for IP_TRANSPARENT, and CAP_NET_ADMIN would let a
// proxy that parses untrusted bytes rewrite the node's nftables. Capabilities are per thread:
// glibc's setuid() runs on every thread, and only the calling thread (the JS thread, where the
// sockets are made) set PR_SET_KEEPCAPS, so every other thread drops to none.
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <node_api.h>

#include "errors.h"

static napi_value fail(napi_env env, const char *what, int err) {
  return seawall_throw_errno(env, err == EPERM ? "EPERM" : "ETRANSPARENT", what, err);
}

static napi_value transparent_socket(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  char addr[INET6_ADDRSTRLEN + 1];
  size_t len = 0;
  int32_t family = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_string_utf8(env, argv[0], addr, sizeof addr, &len) != napi_ok ||
      napi_get_value_int32(env, argv[1], &family) != napi_ok || (family != 4 && family != 6)) {
    napi_throw_type_error(env, NULL, "transparentSocket(address, family[, udp]): a string, 4 or 6, a boolean");
    return NULL;
  }
  bool udp = false;
  if (argc >= 3) napi_get_value_bool(env, argv[2], &udp);
  struct sockaddr_storage ss;
  socklen_t sslen;
  memset(&ss, 0, sizeof ss);
  if (family == 4) {
    struct sockaddr_in *sa = (struct sockaddr_in *)&ss;
    sa->sin_family = AF_INET;
    if (inet_pton(AF_INET, addr, &sa->sin_addr) != 1) return fail(env, "transparentSocket: not an IPv4 address", EINVAL);
    sslen = sizeof *sa;
  } else {
    struct sockaddr_in6 *sa = (struct sockaddr_in6 *)&ss;
    sa->sin6_family = AF_INET6;
    if (inet_pton(AF_INET6, addr, &sa->sin6_addr) != 1) return fail(env, "transparentSocket: not an IPv6 address", EINVAL);
    sslen = sizeof *sa;
  }
  int fd = socket(family == 4 ? AF_INET : AF_INET6, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return fail(env, "socket", errno);
  int one = 1;
  int r = family == 4 ? setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one)
                      : setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof one);
  if (r != 0) {
    int e = errno;
    close(fd);
    return fail(env, family == 4 ? "setsockopt(IP_TRANSPARENT)" : "setsockopt(IPV6_TRANSPARENT)", e);
  }
  if (bind(fd, (struct sockaddr *)&ss, sslen) != 0) {
    int e = errno;
    close(fd);
    return fail(env, "bind", e);
  }
  napi_value out;
  napi_create_int32(env, fd, &out);
  return out;
}

static napi_value keep_capability(napi_env env, napi_callback_info info) {
  (void)info;
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return fail(env, "prctl(PR_SET_KEEPCAPS)", errno);
  return NULL;
}

static napi_value limit_capability(napi_env env, napi_callback_info info) {
  (void)info;
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
  memset(data, 0, sizeof data);
  data[CAP_TO_INDEX(CAP_NET_RAW)].permitted = CAP_TO_MASK(CAP_NET_RAW);
  data[CAP_TO_INDEX(CAP_NET_RAW)].effective = CAP_TO_MASK(CAP_NET_RAW);
  if (syscall(SYS_capset, &hdr, data) != 0) return fail(env, "capset(CAP_NET_RAW)", errno);
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) return fail(env, "prctl(PR_SET_KEEPCAPS, 0)", errno);
  return NULL;
}

void register_transparent(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "transparentSocket", NAPI_AUTO_LENGTH, transparent_socket, NULL, &fn);
  napi_set_named_property(env, exports, "transparentSocket", fn);
  napi_create_function(env, "keepTransparentCapability", NAPI_AUTO_LENGTH, keep_capability, NULL, &fn);
  napi_set_named_property(env, exports, "keepTransparentCapability", fn);
  napi_create_function(env, "limitToTransparentCapability", NAPI_AUTO_LENGTH, limit_capability, NULL, &fn);
  napi_set_named_property(env, exports, "limitToTransparentCapability", fn);
}

// getsockopt(SO_ORIGINAL_DST) for Node: the address a connection had before nftables' REDIRECT or
// DNAT rewrote it (conntrack's original tuple). Node exposes neither this option nor IP_TRANSPARENT,
// so the proxy asks the kernel through this one function. N-API only: no V8 or libuv internals.
// The addon's other functions (transparent upstream sockets) are in transparent.c.
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/netfilter_ipv4.h>
#include <node_api.h>

#include "errors.h"

// linux/netfilter_ipv6/ip6_tables.h defines it too, but pulls in x_tables headers we do not need.
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

static napi_value throw_errno(napi_env env, const char *what, int err) {
  return seawall_throw_errno(env, err == ENOENT ? "ENOENT" : "EORIGDST", what, err);
}

// originalDst(fd, family) -> { address, port }; family 4 or 6 (the accepted socket's family).
static napi_value original_dst(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    napi_throw_type_error(env, NULL, "originalDst(fd, family) needs two numbers");
    return NULL;
  }
  int32_t fd = -1, family = 0;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
      napi_get_value_int32(env, argv[1], &family) != napi_ok || (family != 4 && family != 6)) {
    napi_throw_type_error(env, NULL, "originalDst: fd must be >= 0 and family 4 or 6");
    return NULL;
  }
  char text[INET6_ADDRSTRLEN];
  int port;
  if (family == 4) {
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    memset(&sa, 0, sizeof sa);
    if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &sa, &len) != 0)
      return throw_errno(env, "getsockopt(SO_ORIGINAL_DST)", errno);
    inet_ntop(AF_INET, &sa.sin_addr, text, sizeof text);
    port = ntohs(sa.sin_port);
  } else {
    struct sockaddr_in6 sa;
    socklen_t len = sizeof sa;
    memset(&sa, 0, sizeof sa);
    if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &sa, &len) != 0)
      return throw_errno(env, "getsockopt(IP6T_SO_ORIGINAL_DST)", errno);
    inet_ntop(AF_INET6, &sa.sin6_addr, text, sizeof text);
    port = ntohs(sa.sin6_port);
  }
  napi_value out, address, portv;
  napi_create_object(env, &out);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &address);
  napi_create_int32(env, port, &portv);
  napi_set_named_property(env, out, "address", address);
  napi_set_named_property(env, out, "port", portv);
  return out;
}

void register_transparent(napi_env env, napi_value exports);

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "originalDst", NAPI_AUTO_LENGTH, original_dst, NULL, &fn);
  napi_set_named_property(env, exports, "originalDst", fn);
  register_transparent(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

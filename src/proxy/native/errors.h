// The addon's one way to throw: an Error with `code` and `errno`, its message "what: strerror".
#pragma once
#include <node_api.h>

napi_value seawall_throw_errno(napi_env env, const char *code, const char *what, int err);

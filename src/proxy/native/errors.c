// The addon's one way to throw (errors.h): origdst.c and transparent.c choose the code.
#include "errors.h"

#include <stdio.h>
#include <string.h>

napi_value seawall_throw_errno(napi_env env, const char *code, const char *what, int err) {
  char msg[200];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_value codev, text, error, errnum;
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &codev);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, codev, text, &error);
  napi_create_int32(env, err, &errnum);
  napi_set_named_property(env, error, "errno", errnum);
  napi_throw(env, error);
  return NULL;
}

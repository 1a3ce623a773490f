{
  "targets": [
    {
      "target_name": "seawall_origdst",
      "sources": ["errors.c", "origdst.c", "transparent.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}

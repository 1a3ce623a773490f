{
  "targets": [
    {
      "target_name": "seawall_origdst",
      "sources": ["origdst.c", "transparent.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}

{
  "targets": [
    {
      "target_name": "seawall_origdst",
      "sources": ["origdst.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}

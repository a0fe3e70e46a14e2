{
  "targets": [
    {
      "target_name": "netfence_native",
      "sources": [
        "src/addon.cc",
        "src/errors.cc",
        "src/object.cc",
        "src/maps.cc",
        "src/attach.cc",
        "src/testrun.cc",
        "src/ringbuf.cc",
        "src/watcher.cc",
        "src/netlink.cc",
        "src/links.cc",
        "src/neigh.cc",
        "src/routing.cc",
        "src/netns.cc",
        "src/process.cc",
        "src/gateway.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(pkg-config --cflags-only-I libnl-3.0 libnl-route-3.0 | sed 's/-I//g')"
      ],
      "libraries": [
        "<!@(pkg-config --libs libbpf libnl-3.0 libnl-route-3.0)",
        "-lelf",
        "-lz"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-missing-field-initializers", "-Wno-unused-parameter"]
    }
  ]
}

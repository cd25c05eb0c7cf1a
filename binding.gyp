{
  "targets": [
    {
      "target_name": "sockprobe",
      "sources": [
        "native/addon.cc",
        "native/socket.cc",
        "native/poll.cc",
        "native/constants.cc",
        "native/netns.cc",
        "native/close.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags": ["-Wall", "-Wextra", "-fvisibility=hidden"],
      "cflags_cc": ["-Wall", "-Wextra", "-fvisibility=hidden", "-std=c++17"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"]
    }
  ]
}

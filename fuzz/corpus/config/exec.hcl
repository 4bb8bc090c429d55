# The exec backends, worked through with plain shell scripts.
#
# Each action runs one command in this directory; the command gets one JSON
# object on stdin and prints one JSON object on stdout (docs/exec-protocol.md).
# These scripts keep everything in files under .state/ instead of driving a
# real platform: replace their bodies with your systemctl, docker, kubectl or
# cloud CLI calls.

environment "blue" {
  release  = "1.0.0"
  endpoint = "127.0.0.1:9201"
  exec {
    deploy  = ["./deploy.sh"]
    read    = ["./read.sh"]
    destroy = ["./destroy.sh"]
    timeout = "30s"
  }
}

environment "green" {
  release  = "1.1.0"
  endpoint = "127.0.0.1:9202"
  exec {
    deploy  = ["./deploy.sh"]
    read    = ["./read.sh"]
    destroy = ["./destroy.sh"]
    timeout = "30s"
  }
}

router "lb" {
  live = environment.blue
  exec {
    read   = ["./router-read.sh"]
    switch = ["./router-switch.sh"]
    env    = { STATE_DIR = ".state" }
  }
}

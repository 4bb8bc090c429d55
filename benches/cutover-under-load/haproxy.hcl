# cutover configuration for the HAProxy benchmark. run.sh copies it into the
# run directory (outside the repository) and runs cutover there, so the
# relative paths below are that directory's files. Both colours run the same
# release: every apply is a health gate and a cut-over, nothing else.

cutover {
  state = "cutover.state.json"
}

variable "live" {
  type    = string
  default = "blue"
}

environment "blue" {
  release  = "1.0.0"
  endpoint = "127.0.0.1:9201"
  process {
    command = ["demo-app", "--port", "9201", "--release", "1.0.0"]
    log     = "blue.log"
    grace   = "5s"
  }
  health {
    path      = "/healthz"
    interval  = "200ms"
    timeout   = "20s"
    successes = 3
  }
}

environment "green" {
  release  = "1.0.0"
  endpoint = "127.0.0.1:9202"
  process {
    command = ["demo-app", "--port", "9202", "--release", "1.0.0"]
    log     = "green.log"
    grace   = "5s"
  }
  health {
    path      = "/healthz"
    interval  = "200ms"
    timeout   = "20s"
    successes = 3
  }
}

router "public" {
  live = var.live == "green" ? environment.green : environment.blue
  haproxy {
    socket = "admin.sock"
    map    = "live.map"
  }
}

# cutover configuration for the fleet case of the benchmark: one router over
# N HAProxy instances. bench.py writes it into the run directory with
# the line INSTANCES replaced by the instances' list (each its own socket and map).
# Each colour's release says its name, so that the traffic through every
# instance tells when that instance switched; no release changes: every
# apply is a health gate and a cut-over, nothing else.

cutover {
  state = "cutover.state.json"
}

variable "live" {
  type    = string
  default = "blue"
}

environment "blue" {
  release  = "1.0.0-blue"
  endpoint = "127.0.0.1:9231"
  process {
    command = ["demo-app", "--port", "9231", "--release", "1.0.0-blue"]
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
  release  = "1.0.0-green"
  endpoint = "127.0.0.1:9232"
  process {
    command = ["demo-app", "--port", "9232", "--release", "1.0.0-green"]
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
    instances = [
INSTANCES
    ]
  }
}

# A fleet: one router over a pair of HAProxys (instances "a" and "b"), which
# must always send traffic to the same colour. The cut-over preflights both,
# switches both at once, and if either fails switches the other back.
#
# run.sh applies this once as it is (blue live), then again with
#   --var green_release=1.4.2 --var live=green
# under load through both instances.

cutover {
  state = ".run/cutover.state.json"
}

variable "live" {
  description = "The colour that receives live traffic on every instance."
  type        = string
  default     = "blue"
}

variable "green_release" {
  type    = string
  default = "1.4.1"
}

environment "blue" {
  release  = "1.4.1"
  endpoint = "127.0.0.1:9141"
  process {
    command = ["demo-app", "--port", "9141", "--release", "1.4.1"]
    log     = ".run/blue.log"
    grace   = "5s"
  }
  health {
    path     = "/healthz"
    interval = "200ms"
    timeout  = "20s"
  }
}

environment "green" {
  release  = var.green_release
  endpoint = "127.0.0.1:9142"
  process {
    command = ["demo-app", "--port", "9142", "--release", var.green_release]
    log     = ".run/green.log"
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
    # Shared by the instances: the map key (the router's name), the
    # backends (the colours' names) and the runtime API's timeout.
    timeout = "2s"
    # Each instance: its own runtime API and map file, as its haproxy-*.cfg
    # names them.
    instances = [
      { name = "a", socket = ".run/admin-a.sock", map = ".run/live-a.map" },
      { name = "b", socket = ".run/admin-b.sock", map = ".run/live-b.map" },
    ]
  }
}

output "urls" {
  value = ["http://127.0.0.1:18085/", "http://127.0.0.1:18086/"]
}

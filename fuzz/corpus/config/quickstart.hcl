# The quickstart: two colours of the demo app behind HAProxy.
#
# run.sh applies this once as it is (blue live), then again with
#   --var green_release=1.4.2 --var live=green
# which deploys 1.4.2 to the idle green colour, waits for its health gate,
# and only then switches HAProxy's live traffic from blue to green.

cutover {
  state = ".run/cutover.state.json"
}

variable "live" {
  description = "The colour that receives live traffic."
  type        = string
  default     = "blue"
}

variable "blue_release" {
  type    = string
  default = "1.4.1"
}

variable "green_release" {
  type    = string
  default = "1.4.1"
}

environment "blue" {
  release  = var.blue_release
  endpoint = "127.0.0.1:9101"
  process {
    command = ["demo-app", "--port", "9101", "--release", var.blue_release]
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
  endpoint = "127.0.0.1:9102"
  process {
    command = ["demo-app", "--port", "9102", "--release", var.green_release]
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
  # The cut-over is this one line.
  live = var.live == "green" ? environment.green : environment.blue
  # The idle colour gets its own listener (127.0.0.1:18090) for trying a
  # release before the cut-over.
  preview = var.live == "green" ? environment.blue : environment.green
  haproxy {
    socket = ".run/admin.sock"
    map    = ".run/live.map"
  }
}

output "url" {
  value = "http://127.0.0.1:18080/"
}

output "live_release" {
  value = var.live == "green" ? var.green_release : var.blue_release
}

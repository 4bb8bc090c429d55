# Two colours of the demo app behind Caddy, driven through Caddy's admin API.
#
# run.sh starts Caddy from caddy.json (HTTP on 127.0.0.1:18081, admin API on
# 127.0.0.1:18091), applies this once as it is (blue live), then again with
#   --var green_release=1.4.2 --var live=green
# which deploys 1.4.2 to the idle green colour, waits for its health gate,
# and only then points Caddy's route at green.
#
# caddy.json has no route of cutover's: the first apply creates the route
# `cutover-public` (matching the hosts below) and inserts it before the
# operator's routes, so the catch-all "no live colour yet" stops answering.

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
  endpoint = "127.0.0.1:9111"
  process {
    command = ["demo-app", "--port", "9111", "--release", var.blue_release]
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
  endpoint = "127.0.0.1:9112"
  process {
    command = ["demo-app", "--port", "9112", "--release", var.green_release]
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
  caddy {
    # caddy.json's admin.listen: loopback only, the admin API has no authentication.
    admin  = "127.0.0.1:18091"
    server = "srv0"
    # Caddy's host matcher ignores the port: requests to 127.0.0.1:18081 match.
    match_host = ["127.0.0.1", "localhost"]
  }
}

output "url" {
  value = "http://127.0.0.1:18081/"
}

output "live_release" {
  value = var.live == "green" ? var.green_release : var.blue_release
}

# Two colours of the demo app behind nginx, driven through an include file
# that cutover owns.
#
# run.sh starts nginx from nginx.conf (HTTP on 127.0.0.1:18082, the include's
# marker on 127.0.0.1:18092), applies this once as it is (blue live), then
# again with
#   --var green_release=1.4.2 --var live=green
# which deploys 1.4.2 to the idle green colour, waits for its health gate,
# and only then rewrites the include, validates it with `nginx -t`, reloads
# nginx and waits until the new workers serve green and the old ones are gone.

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
  endpoint = "127.0.0.1:9121"
  process {
    command = ["demo-app", "--port", "9121", "--release", var.blue_release]
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
  endpoint = "127.0.0.1:9122"
  process {
    command = ["demo-app", "--port", "9122", "--release", var.green_release]
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
  nginx {
    # nginx.conf includes this file at http level; cutover rewrites it.
    include = ".run/public.conf"
    # nginx.conf's `pid`, under the prefix run.sh gives nginx (-p .run/).
    pid_file = ".run/nginx.pid"
    # Where the include's marker server listens (loopback only).
    marker = "127.0.0.1:18092"
  }
}

output "url" {
  value = "http://127.0.0.1:18082/"
}

output "live_release" {
  value = var.live == "green" ? var.green_release : var.blue_release
}

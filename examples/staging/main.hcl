# The seed's staging flow: a release goes to the idle colour, is tested
# there through the router's preview, analysed by its metrics in Prometheus,
# approved by a person, and only then gets the live traffic — which is
# analysed again, under live traffic, and switched back if it goes bad.
#
# run.sh walks it: a release answering 5% errors stopped by the `before`
# analysis; a good one approved and switched; one that goes bad only under
# live traffic caught by the `after` analysis and switched back.

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
  default = "1.0"
}

variable "green_release" {
  type    = string
  default = "1.0"
}

# demo-app's faults, for the walk-through: the share of `/` answered with
# 500, and how long after its start the errors begin.
variable "blue_error_rate" {
  type    = string
  default = "0"
}

variable "green_error_rate" {
  type    = string
  default = "0"
}

variable "blue_errors_after" {
  type    = string
  default = "0"
}

locals {
  target_release = var.live == "green" ? var.green_release : var.blue_release
  # The 5xx share of `/` answered by the release a cut-over puts live, on
  # the colour it switches to, over the last 5 seconds (0 without traffic;
  # no data before Prometheus has scraped that release twice).
  error_share = "sum(rate(demo_app_requests_total{job=\"{{target}}\",release=\"{{target_release}}\",path=\"/\",status=~\"5..\"}[5s])) / clamp_min(sum(rate(demo_app_requests_total{job=\"{{target}}\",release=\"{{target_release}}\",path=\"/\"}[5s])), 0.001)"
}

environment "blue" {
  release  = var.blue_release
  endpoint = "127.0.0.1:9201"
  process {
    command = ["demo-app", "--port", "9201", "--release", var.blue_release,
    "--error-rate", var.blue_error_rate, "--errors-after", var.blue_errors_after]
    log   = ".run/blue.log"
    grace = "5s"
  }
  health {
    path     = "/healthz"
    interval = "200ms"
    timeout  = "20s"
  }
}

environment "green" {
  release  = var.green_release
  endpoint = "127.0.0.1:9202"
  process {
    command = ["demo-app", "--port", "9202", "--release", var.green_release,
    "--error-rate", var.green_error_rate]
    log   = ".run/green.log"
    grace = "5s"
  }
  health {
    path     = "/healthz"
    interval = "200ms"
    timeout  = "20s"
  }
}

router "public" {
  live = var.live == "green" ? environment.green : environment.blue
  # The idle colour is on the preview listener; its tests go through it.
  preview     = var.live == "green" ? environment.blue : environment.green
  preview_url = "http://127.0.0.1:18190/"

  # Final testing in the colour about to go live, through the preview.
  test "smoke" {
    command = ["./smoke.sh"]
    env     = { EXPECT_RELEASE = local.target_release }
    timeout = "30s"
  }

  # Its error share under the test traffic (run.sh sends it through the
  # preview), before the switch: a failure keeps the live colour. A round
  # before Prometheus has the new release's figures passes (`no_data`); the
  # later ones have them.
  analysis "errors" {
    prometheus    = "http://127.0.0.1:19090"
    query         = local.error_share
    max           = 0.01
    initial_delay = "3s"
    count         = 3
    interval      = "2s"
    no_data       = "pass"
  }

  # And under live traffic, after the switch: a failure switches back.
  analysis "live-errors" {
    prometheus    = "http://127.0.0.1:19090"
    query         = local.error_share
    max           = 0.01
    when          = "after"
    initial_delay = "3s"
    count         = 5
    interval      = "2s"
    failure_limit = 1
  }

  haproxy {
    socket = ".run/admin.sock"
    map    = ".run/live.map"
  }
}

output "live_release" {
  value = local.target_release
}

# The blue-green runbook of an AWS Application Load Balancer, as cutover
# config: the listener's default action forwards to one colour's target
# group; a release goes to the idle colour, passes its health gate, and only
# then the listener is switched, in one ModifyListener. A preview rule
# (header `X-Cutover-Preview: public`) shows the idle colour before it goes
# live, and keeps its target group attached, so the ALB health-checks it.
#
# run.sh runs this against moto's server on 127.0.0.1:15000 (AWS's API, not
# AWS: see docs/alb.md): it applies once as it is (blue live), then again
#   --var green_release=1.4.2 --var live=green
#
# Against AWS: put your listener's and target groups' ARNs below (the
# defaults are the ones moto makes for run.sh), run with `--var moto=false`,
# and give the credentials the IAM policy in iam-policy.json. Each colour's
# `endpoint` is then where cutover reaches that colour for its own health
# gate (an internal address of its instances), and its `process` block goes
# (the colour is deployed by something else), or becomes an `exec` block
# that deploys it.

cutover {
  state = ".run/cutover.state.json"
}

variable "moto" {
  description = "Send the AWS calls to moto's server on loopback (false: to AWS)."
  type        = bool
  default     = true
}

variable "live" {
  type    = string
  default = "blue"
}

variable "blue_release" {
  type    = string
  default = "1.4.1"
}

variable "green_release" {
  type    = string
  default = "1.4.1"
}

variable "listener_arn" {
  type    = string
  default = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/9c1e5ca5138ed1de/e58c8ac09b221cac"
}

variable "target_groups" {
  description = "Each colour's target group."
  type        = map
  default = {
    blue  = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-blue/8230151cfc191d47"
    green = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-green/b5467b546efa1890"
  }
}

environment "blue" {
  release  = var.blue_release
  endpoint = "127.0.0.1:9131"
  process {
    command = ["demo-app", "--port", "9131", "--release", var.blue_release]
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
  endpoint = "127.0.0.1:9132"
  process {
    command = ["demo-app", "--port", "9132", "--release", var.green_release]
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
  live    = var.live == "green" ? environment.green : environment.blue
  preview = var.live == "green" ? environment.blue : environment.green
  # The old colour keeps its in-flight requests this long before it is
  # changed; cutover waits at least its target group's deregistration delay
  # (300s unless lowered: docs/alb.md, "Drain").
  drain = "5s"
  aws_alb {
    listener_arn  = var.listener_arn
    target_groups = var.target_groups
    endpoint_url  = var.moto ? "http://127.0.0.1:15000" : null
    # Each AWS call: 10s an attempt, at most 4 attempts with backoff.
    timeout      = "10s"
    max_attempts = 4
  }
}

output "live_release" {
  value = var.live == "green" ? var.green_release : var.blue_release
}

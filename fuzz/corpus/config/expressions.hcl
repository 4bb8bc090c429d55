variable "release" {
  type      = string
  default   = "1.4.2"
  sensitive = true
}

variable "ports" {
  type    = list
  default = [9101, 9102]
}

variable "cut_over" {
  type    = bool
  default = true
}

locals {
  app    = "demo-app"
  args   = concat(["--release"], [var.release])
  sum    = 1 + 2 * 3 - 4 / 2 % 3
  names  = { for i, p in var.ports : "c${i}" => p if p > 0 }
  split  = split(",", "a,b,c")
  n      = length(local.split) + tonumber("3")
  json   = jsonencode({ a = [1, 2.5, true, null], b = "x" })
  keys   = keys(local.names)
  first  = coalesce(null, "x")
  upper  = upper(lower(join("-", ["A", "b"])))
  merged = merge({ a = 1 }, { b = 2 })
  look   = lookup(local.merged, "a", 0)
  fmt    = format("%s-%d", "x", 3)
  has    = contains(["a"], "a")
  s      = tostring(local.n)
  heredoc = <<-EOT
    hello ${local.app} %{ if var.cut_over }on%{ else }off%{ endif }
    EOT
}

environment "blue" {
  release  = "1.4.1"
  endpoint = "127.0.0.1:${var.ports[0]}"
  process {
    command = [local.app, "--port", tostring(var.ports[0])]
  }
}

environment "green" {
  release   = var.release
  endpoints = ["127.0.0.1:${var.ports[1]}"]
  health {
    path            = "/healthz"
    status          = 200
    interval        = "1s"
    timeout         = "30s"
    request_timeout = "2s"
    successes       = 2
    release_path    = "/version"
  }
  exec {
    deploy  = ["./deploy.sh"]
    timeout = "10s"
  }
}

router "public" {
  live = var.cut_over ? environment.green : environment.blue
  drain = "5s"
  verify {
    url       = "http://127.0.0.1:8080/"
    status    = 200
    successes = 3
    timeout   = "10s"
  }
  haproxy {
    socket = "/run/haproxy/admin.sock"
    map    = "/etc/haproxy/live.map"
  }
}

output "live_release" {
  value       = environment.green.release
  description = "What users get"
  sensitive   = true
}

cutover {
  state       = "cutover.state.json"
  parallelism = 10
}

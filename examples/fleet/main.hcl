# A fleet of services from one map: each service is a blue and a green
# colour and a router, made by three blocks with `for_each`.
#
# run.sh applies this as it is (every service blue, release 1.4.1), then
#   --var 'green={ web = "1.4.2" }' --var 'live={ web = "green" }'
# which deploys 1.4.2 to web's idle green colour, waits for its health gate,
# and switches only web's router; api and docs are not touched.

cutover {
  state = ".run/cutover.state.json"
}

variable "services" {
  description = "Each service: the ports of its blue and green colours."
  type = map(object({
    blue  = number
    green = number
    path  = optional(string, "/healthz")
  }))
  default = {
    api  = { blue = 9181, green = 9191 }
    web  = { blue = 9182, green = 9192 }
    docs = { blue = 9183, green = 9193 }
  }
  validation {
    condition     = alltrue([for s in var.services : s.blue != s.green])
    error_message = "A service's blue and green colours need ports of their own."
  }
}

variable "live" {
  description = "The live colour of each service that is not blue."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for c in values(var.live) : contains(["blue", "green"], c)])
    error_message = "A live colour is blue or green."
  }
}

variable "green" {
  description = "The release of each service's green colour that is not 1.4.1."
  type        = map(string)
  default     = {}
}

environment "blue" {
  for_each = var.services
  release  = "1.4.1"
  endpoint = "127.0.0.1:${each.value.blue}"
  process {
    command = ["demo-app", "--port", "${each.value.blue}", "--release", "1.4.1"]
    log     = ".run/blue-${each.key}.log"
    grace   = "5s"
  }
  health {
    path     = each.value.path
    interval = "200ms"
    timeout  = "20s"
  }
}

environment "green" {
  for_each = var.services
  release  = lookup(var.green, each.key, "1.4.1")
  endpoint = "127.0.0.1:${each.value.green}"
  process {
    command = ["demo-app", "--port", "${each.value.green}", "--release", lookup(var.green, each.key, "1.4.1")]
    log     = ".run/green-${each.key}.log"
    grace   = "5s"
  }
  health {
    path      = each.value.path
    interval  = "200ms"
    timeout   = "20s"
    successes = 3
  }
}

router "svc" {
  for_each = var.services
  live     = lookup(var.live, each.key, "blue") == "green" ? environment.green[each.key] : environment.blue[each.key]
  haproxy {
    socket = ".run/admin.sock"
    map    = ".run/live.map"
  }
}

output "urls" {
  value = { api = "http://127.0.0.1:18181/", web = "http://127.0.0.1:18182/", docs = "http://127.0.0.1:18183/" }
}

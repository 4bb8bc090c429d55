#!/usr/bin/env python3
"""Write the scale benchmark's configurations (issue 6, reshaped in issue 12).

cutover: one map of N/2 services, written once (`services.hcl`:
`locals { services = { s0 = { health = "/healthz/s0" }, ... } }`), and three
blocks with `for_each` over it (`main.hcl`):

- `environment "blue"` and `environment "green"`: N environments
  `blue["s0"]`, `green["s0"]`, ... with no backend block (deployed "by
  something else"), whose health checks are served by ONE loopback HTTP
  server answering `/healthz/<service>/<colour>`;
- `router "r"`: N/2 routers `r["s0"]`, ..., each its own key (`r.s0`, the
  instance's flat name, HAProxy's default key) of ONE map on ONE real
  HAProxy, switching between its own service's blue and green, which
  `backends = { blue = "blue", green = "green" }` (by block) maps onto two
  shared HAProxy backends, `blue` and `green`.

The same live world as the N literal blocks written before: one HAProxy, one
map of N/2 keys, two shared backends, one health server.

Terraform: the same shapes with Terraform's own `for_each` over the same map
(`locals` in `services.tf`) and the built-in `terraform_data` resource: N
colour instances, N/2 router instances referring to their own service's
colour (`terraform_data.blue[each.key]`).

With `--services json` the map is a JSON file instead (services.json, and
`locals { services = jsondecode(file("services.json")) }`): hcl-edit parses an
object literal in time quadratic in its entries (docs/scale.md).

Usage: generate.py cutover DIR N --health-port P --socket S --map M
                   [--live blue|green] [--green-release R] [--services hcl|json]
       generate.py terraform DIR N [--live ...] [--green-release R]
"""
import argparse
import json
import os


def services(n):
    """The services map: N/2 entries `sI = { health = "/healthz/sI" }`."""
    lines = [f'    s{i} = {{ health = "/healthz/s{i}" }}\n' for i in range(n // 2)]
    return "locals {\n  services = {\n" + "".join(lines) + "  }\n}\n"


def cutover(args):
    if args.services == "json":
        # The same map as a JSON file the configuration decodes: what a tool
        # that lists the services would write.
        svc = {f"s{i}": {"health": f"/healthz/s{i}"} for i in range(args.n // 2)}
        write(args.dir, "services.json", json.dumps(svc, indent=2) + "\n")
        write(args.dir, "services.hcl", 'locals {\n  services = jsondecode(file("services.json"))\n}\n')
    else:
        write(args.dir, "services.hcl", services(args.n))
    colours = "".join(
        f'environment "{colour}" {{\n'
        f'  for_each = local.services\n'
        f'  release  = "{release}"\n'
        f'  endpoint = "127.0.0.1:{args.health_port}"\n'
        f'  health {{\n'
        f'    path     = "${{each.value.health}}/{colour}"\n'
        f'    interval = "100ms"\n'
        f'    timeout  = "20s"\n'
        f'  }}\n'
        f'}}\n\n'
        for colour, release in (("blue", "1.0.0"), ("green", args.green_release))
    )
    write(
        args.dir,
        "main.hcl",
        'cutover {\n  state = "cutover.state.json"\n}\n\n'
        + colours
        + 'router "r" {\n'
        f'  for_each = local.services\n'
        f'  live     = environment.{args.live}[each.key]\n'
        f'  haproxy {{\n'
        f'    socket   = "{args.socket}"\n'
        f'    map      = "{args.map}"\n'
        f'    backends = {{ blue = "blue", green = "green" }}\n'
        f'  }}\n'
        f'}}\n',
    )


def terraform(args):
    write(args.dir, "services.tf", services(args.n))
    colours = "".join(
        f'resource "terraform_data" "{colour}" {{\n'
        f'  for_each = local.services\n'
        f'  input    = {{ release = "{release}", endpoint = "127.0.0.1:1${{each.value.health}}/{colour}" }}\n'
        f'}}\n\n'
        for colour, release in (("blue", "1.0.0"), ("green", args.green_release))
    )
    write(
        args.dir,
        "main.tf",
        colours
        + 'resource "terraform_data" "r" {\n'
        f'  for_each = local.services\n'
        f'  input    = {{ key = "r.${{each.key}}", live = terraform_data.{args.live}[each.key].output.release }}\n'
        f'}}\n',
    )


def write(directory, name, text):
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    # Unchanged files are left as they are (services.hcl between phases).
    if os.path.exists(path):
        with open(path) as f:
            if f.read() == text:
                return
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("tool", choices=["cutover", "terraform"])
    p.add_argument("dir")
    p.add_argument("n", type=int)
    p.add_argument("--health-port", type=int, default=0)
    p.add_argument("--socket", default="")
    p.add_argument("--map", default="")
    p.add_argument("--live", default="blue", choices=["blue", "green"])
    p.add_argument("--green-release", default="1.0.0")
    p.add_argument("--services", default="hcl", choices=["hcl", "json"],
                   help="the services map as an HCL literal (services.hcl) or a JSON file it decodes")
    args = p.parse_args()
    {"cutover": cutover, "terraform": terraform}[args.tool](args)


if __name__ == "__main__":
    main()

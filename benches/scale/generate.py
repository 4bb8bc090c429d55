#!/usr/bin/env python3
"""Write the scale benchmark's configurations (issue 6).

cutover: N environments `blue_i` / `green_i` (i < N/2) with no backend block
(deployed "by something else"), whose health checks are served by ONE loopback
HTTP server answering `/healthz/<env>`; and N/2 routers `r_i`, each its own key
of ONE map on ONE real HAProxy, switching between `blue_i` and `green_i`, which
`backends = {...}` maps onto two shared HAProxy backends, `blue` and `green`.

Terraform: the same shapes with the built-in `terraform_data` resource
(N colour resources, N/2 routers referencing them), as in the issue's table.

Usage: generate.py cutover DIR N --health-port P --socket S --map M
                   [--live blue|green] [--green-release R]
       generate.py terraform DIR N [--live ...] [--green-release R]
"""
import argparse
import os


def cutover(args):
    half = args.n // 2
    out = []
    out.append('cutover {\n  state = "cutover.state.json"\n}\n')
    for i in range(half):
        for colour, release in (("blue", "1.0.0"), ("green", args.green_release)):
            name = f"{colour}_{i}"
            out.append(
                f'environment "{name}" {{\n'
                f'  release  = "{release}"\n'
                f'  endpoint = "127.0.0.1:{args.health_port}"\n'
                f'  health {{\n'
                f'    path     = "/healthz/{name}"\n'
                f'    interval = "100ms"\n'
                f'    timeout  = "20s"\n'
                f'  }}\n'
                f'}}\n'
            )
    for i in range(half):
        out.append(
            f'router "r_{i}" {{\n'
            f'  live = environment.{args.live}_{i}\n'
            f'  haproxy {{\n'
            f'    socket   = "{args.socket}"\n'
            f'    map      = "{args.map}"\n'
            f'    key      = "r_{i}"\n'
            f'    backends = {{ blue_{i} = "blue", green_{i} = "green" }}\n'
            f'  }}\n'
            f'}}\n'
        )
    write(args.dir, "main.hcl", "\n".join(out))


def terraform(args):
    half = args.n // 2
    out = []
    for i in range(half):
        for colour, release in (("blue", "1.0.0"), ("green", args.green_release)):
            out.append(
                f'resource "terraform_data" "{colour}_{i}" {{\n'
                f'  input = {{ release = "{release}", endpoint = "127.0.0.1:1/healthz/{colour}_{i}" }}\n'
                f'}}\n'
            )
    for i in range(half):
        out.append(
            f'resource "terraform_data" "r_{i}" {{\n'
            f'  input = {{ key = "r_{i}", live = terraform_data.{args.live}_{i}.output.release }}\n'
            f'}}\n'
        )
    write(args.dir, "main.tf", "\n".join(out))


def write(directory, name, text):
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, os.path.join(directory, name))


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
    args = p.parse_args()
    {"cutover": cutover, "terraform": terraform}[args.tool](args)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""An ALB in moto's server, and the hand-made changes the tests make to it.

Run with the Python of the moto virtual environment (scripts/moto-venv.sh),
which has boto3:

  moto_alb.py ENDPOINT setup [--seed N] [--name web] [--colours blue,green] [--empty c,...] [--live blue]
      seeds moto's ids (the same ARNs on every run: examples/alb/main.hcl
      names the ones seed 42 gives), creates a VPC, two subnets, an ALB, one target group per colour (one
      target registered in each, none in the --empty ones), and an HTTP
      listener on port 80 forwarding to --live (a fixed 503 with
      --live none); prints {"listener": ARN, "target_groups": {colour: ARN}}
  moto_alb.py ENDPOINT forward LISTENER TG_ARN           a hand-made switch
  moto_alb.py ENDPOINT weighted LISTENER TG_ARN=W ...    a hand-made canary
  moto_alb.py ENDPOINT rules LISTENER                    the rules, as JSON
  moto_alb.py ENDPOINT rule LISTENER PRIORITY HOST TG    a host rule of one's own
  moto_alb.py ENDPOINT delay TG SECONDS                  the target group's deregistration delay
  moto_alb.py ENDPOINT iam-user ACTION...                an IAM user allowed only ACTIONs (3 calls);
      prints "KEY-ID SECRET" (with INITIAL_NO_AUTH_ACTION_COUNT, moto then checks IAM)

moto is AWS's API, not AWS: it accepts a forward to a target group that does
not exist and reports every registered target healthy (docs/alb.md).
"""

import json
import os
import sys
import urllib.request

import boto3


def clients(endpoint):
    # An IAM user's keys once moto checks IAM (MOTO_ALB_KEYS="ID SECRET").
    key, secret = os.environ.get("MOTO_ALB_KEYS", "testing testing").split(" ", 1)
    kw = dict(
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
    )
    return boto3.client("ec2", **kw), boto3.client("elbv2", **kw)


def setup(endpoint, args):
    opts = {"--seed": "", "--name": "web", "--colours": "blue,green", "--empty": "", "--live": "blue"}
    for flag, value in zip(args[::2], args[1::2]):
        if flag not in opts:
            sys.exit(f"unknown option {flag}")
        opts[flag] = value
    if opts["--seed"]:
        urllib.request.urlopen(
            urllib.request.Request(f"{endpoint}/moto-api/seed?a={int(opts['--seed'])}", method="POST"),
            timeout=10,
        ).read()
    ec2, elb = clients(endpoint)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{az}")[
            "Subnet"
        ]["SubnetId"]
        for i, az in [(1, "a"), (2, "b")]
    ]
    name = opts["--name"]
    lb = elb.create_load_balancer(Name=name, Subnets=subnets, Type="application")
    lb_arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
    empty = set(filter(None, opts["--empty"].split(",")))
    groups = {}
    for i, colour in enumerate(filter(None, opts["--colours"].split(","))):
        tg = elb.create_target_group(
            Name=f"{name}-{colour}", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip",
            HealthCheckPath="/healthz",
        )["TargetGroups"][0]["TargetGroupArn"]
        if colour not in empty:
            elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": f"10.0.1.{10 + i}", "Port": 80}])
        groups[colour] = tg
    live = opts["--live"]
    if live == "none":
        default = {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503"}}
    else:
        default = {"Type": "forward", "TargetGroupArn": groups[live]}
    listener = elb.create_listener(
        LoadBalancerArn=lb_arn, Protocol="HTTP", Port=80, DefaultActions=[default]
    )["Listeners"][0]["ListenerArn"]
    print(json.dumps({"listener": listener, "target_groups": groups}))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    endpoint, command, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    _, elb = clients(endpoint)
    if command == "setup":
        setup(endpoint, args)
    elif command == "forward":
        elb.modify_listener(
            ListenerArn=args[0], DefaultActions=[{"Type": "forward", "TargetGroupArn": args[1]}]
        )
    elif command == "weighted":
        groups = [{"TargetGroupArn": a.rsplit("=", 1)[0], "Weight": int(a.rsplit("=", 1)[1])} for a in args[1:]]
        elb.modify_listener(
            ListenerArn=args[0],
            DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}],
        )
    elif command == "rules":
        print(json.dumps(elb.describe_rules(ListenerArn=args[0])["Rules"]))
    elif command == "rule":
        rule = elb.create_rule(
            ListenerArn=args[0], Priority=int(args[1]),
            Conditions=[{"Field": "host-header", "HostHeaderConfig": {"Values": [args[2]]}}],
            Actions=[{"Type": "forward", "TargetGroupArn": args[3]}],
        )
        print(rule["Rules"][0]["RuleArn"])
    elif command == "iam-user":
        kw = dict(endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
        iam = boto3.client("iam", **kw)
        iam.create_user(UserName="deployer")
        policy = {"Version": "2012-10-17",
                  "Statement": [{"Effect": "Allow", "Action": args, "Resource": "*"}]}
        iam.put_user_policy(UserName="deployer", PolicyName="cutover", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="deployer")["AccessKey"]
        print(key["AccessKeyId"], key["SecretAccessKey"])
    elif command == "delay":
        elb.modify_target_group_attributes(
            TargetGroupArn=args[0],
            Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": args[1]}],
        )
    else:
        sys.exit(f"unknown command {command}\n{__doc__}")


if __name__ == "__main__":
    main()

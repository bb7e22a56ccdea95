# The VPC: a /16 cut into six /20 subnets over three zones, a NAT gateway per zone, the load-balancer tags.

mock_provider "aws" {
  source          = "./tests/mocks"
  override_during = plan
}

variables {
  region                       = "us-west-2"
  name_prefix                  = "mlp"
  cluster_admin_principal_arns = ["arn:aws:iam::123456789012:role/platform-admin"]
  vpc_cidr                     = "10.20.0.0/16"
}

run "six_20_subnets_in_the_16_over_three_zones" {
  command = plan

  assert {
    condition     = length(aws_subnet.public) == 3 && length(aws_subnet.private) == 3
    error_message = "Expected three public and three private subnets."
  }

  assert {
    condition = alltrue([
      for subnet in concat(values(aws_subnet.public), values(aws_subnet.private)) :
      endswith(subnet.cidr_block, "/20") && cidrsubnet(subnet.cidr_block, 0, 0) == subnet.cidr_block
    ])
    error_message = "Every subnet must be a /20 network address."
  }

  assert {
    # A /20 is inside 10.20.0.0/16 exactly when its first 16 bits are the VPC's.
    condition = alltrue([
      for subnet in concat(values(aws_subnet.public), values(aws_subnet.private)) :
      cidrsubnet("${cidrhost(subnet.cidr_block, 0)}/16", 0, 0) == "10.20.0.0/16"
    ])
    error_message = "Every subnet must lie inside the VPC's /16."
  }

  assert {
    condition     = length(distinct([for subnet in concat(values(aws_subnet.public), values(aws_subnet.private)) : subnet.cidr_block])) == 6
    error_message = "The six subnets must not overlap."
  }

  assert {
    condition     = toset([for subnet in aws_subnet.public : subnet.availability_zone]) == toset(["us-west-2a", "us-west-2b", "us-west-2c"]) && toset([for subnet in aws_subnet.private : subnet.availability_zone]) == toset(["us-west-2a", "us-west-2b", "us-west-2c"])
    error_message = "Each of the first three zones needs one public and one private subnet."
  }

  assert {
    condition     = aws_vpc.this.cidr_block == "10.20.0.0/16" && aws_vpc.this.enable_dns_hostnames
    error_message = "The VPC must be the given /16 with DNS host names on."
  }

  assert {
    condition     = alltrue([for subnet in aws_subnet.public : subnet.map_public_ip_on_launch == false])
    error_message = "Public subnets must not give launched instances public addresses."
  }
}

run "a_nat_gateway_per_zone" {
  command = plan

  assert {
    condition     = length(aws_nat_gateway.this) == 3 && length(aws_eip.nat) == 3
    error_message = "Expected three NAT gateways, each with its Elastic IP."
  }

  assert {
    condition     = alltrue([for zone, gateway in aws_nat_gateway.this : gateway.subnet_id == aws_subnet.public[zone].id && gateway.allocation_id == aws_eip.nat[zone].id])
    error_message = "Each zone's NAT gateway must sit in that zone's public subnet, with that zone's Elastic IP."
  }

  assert {
    condition     = alltrue([for zone, route in aws_route.private_nat : route.nat_gateway_id == aws_nat_gateway.this[zone].id && route.destination_cidr_block == "0.0.0.0/0"])
    error_message = "Each zone's private route table must send internet traffic to its own zone's NAT gateway."
  }

  assert {
    condition     = alltrue([for zone, association in aws_route_table_association.private : association.route_table_id == aws_route_table.private[zone].id && association.subnet_id == aws_subnet.private[zone].id])
    error_message = "Each private subnet must use its own zone's route table."
  }

  assert {
    condition     = aws_route.public_internet.gateway_id == aws_internet_gateway.this.id
    error_message = "The public route table must send internet traffic to the internet gateway."
  }
}

run "load_balancer_subnet_tags" {
  command = plan

  assert {
    condition     = alltrue([for subnet in aws_subnet.public : subnet.tags["kubernetes.io/role/elb"] == "1" && subnet.tags["kubernetes.io/cluster/mlp-us-west-2"] == "shared"])
    error_message = "Public subnets need kubernetes.io/role/elb=1 and the cluster tag for internet-facing load balancers."
  }

  assert {
    condition     = alltrue([for subnet in aws_subnet.private : subnet.tags["kubernetes.io/role/internal-elb"] == "1" && subnet.tags["kubernetes.io/cluster/mlp-us-west-2"] == "shared" && !contains(keys(subnet.tags), "kubernetes.io/role/elb")])
    error_message = "Private subnets need kubernetes.io/role/internal-elb=1 and the cluster tag, and not the public elb role."
  }
}

run "vpc_flow_logs_and_a_closed_default_security_group" {
  command = plan

  assert {
    condition     = aws_flow_log.vpc.traffic_type == "ALL" && aws_flow_log.vpc.log_destination == aws_cloudwatch_log_group.flow_logs.arn
    error_message = "All VPC traffic must be logged to the flow-log group."
  }

  assert {
    condition     = aws_cloudwatch_log_group.flow_logs.kms_key_id == aws_kms_key.logs.arn && aws_cloudwatch_log_group.flow_logs.retention_in_days == 365
    error_message = "Flow logs must be encrypted with the logs key and kept a year by default."
  }

  assert {
    condition     = length(aws_default_security_group.this.ingress) == 0 && length(aws_default_security_group.this.egress) == 0
    error_message = "The default security group must allow nothing."
  }
}

run "zones_can_be_named" {
  command = plan

  variables {
    availability_zones = ["us-west-2b", "us-west-2c", "us-west-2d"]
  }

  assert {
    condition     = toset(keys(aws_nat_gateway.this)) == toset(["us-west-2b", "us-west-2c", "us-west-2d"])
    error_message = "Named zones must be used instead of the region's first three."
  }
}

# expect: 11:20
# A lab VM has no instance profile: a role that logs in to Vault as an IAM role must run on aws.
compute "qemu" "lab" {}

role "web" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    compute      = "lab"
    aws_iam_role = "arn:aws:iam::123456789012:role/web"
  }
}

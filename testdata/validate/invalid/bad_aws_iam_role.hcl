# expect: 10:20
compute "qemu" "lab" {}

role "web" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    compute      = "lab"
    aws_iam_role = "arn:aws:iam::123456789012:user/alice"
  }
}

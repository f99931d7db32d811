# expect: 3:13
variable "a" {
  default = "${var.b}-x"
}

variable "b" {
  default = "${var.a}-y"
}

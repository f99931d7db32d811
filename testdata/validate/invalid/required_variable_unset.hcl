# expect: 2:1
variable "domain" {
  type = string
}

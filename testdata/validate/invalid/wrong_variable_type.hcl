# expect: 4:13
variable "replicas" {
  type    = number
  default = "many"
}

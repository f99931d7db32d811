# expect: 8:18
variable "domain" {
  default = "lab.example"
}

dns "rfc2136" "home" {
  server = "127.0.0.1:5353"
  zone   = "${var.domian}."
}

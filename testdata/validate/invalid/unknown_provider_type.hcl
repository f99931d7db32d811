# expect: 2:9
compute "qemuu" "lab" {
  memory = 512
}

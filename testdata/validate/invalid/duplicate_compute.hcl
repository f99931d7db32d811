# expect: 4:16
compute "qemu" "lab" {}

compute "qemu" "lab" {
  memory = 1024
}

# expect: 2:9 6:4
compute "aws" "prod" {
  region = "eu-west-1"
}

ip "awseip" "front" {
  allocation_id = "eipalloc-0123456789abcdef0"
}

role "web" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    compute = "prod"
    ports   = [80]
    cutover "ip" {
      ip = "front"
    }
  }
}

# A Raspberry Pi role as the homelab example has it: an SD card with A/B slots, built through
# qemu-user on an amd64 host, booted as the SD card of qemu's raspi3b.
drover {
  name = "rpi"
}

base "debian-bookworm" {
  suite  = "bookworm"
  mirror = "http://deb.debian.org/debian"
}

role "pi" {
  image {
    base     = "debian-bookworm"
    builder  = "rpi"
    packages = ["nginx-light"]
    files    = { "/var/www/html/index.html" = "pi/index.html" }
    run      = ["systemctl enable nginx"]
  }
}

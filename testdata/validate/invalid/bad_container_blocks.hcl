# expect: 6:15 9:16 13:16 14:16 17:16 19:17 20:17 22:15 30:10 33:10
role "web" {
  image {
    base = "debian-bookworm"
    container "app" {
      image = "registry.example.net/web/app:1.4"
    }
    container "short" {
      image  = "nginx:1.25"
      digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
    }
    container "docker" {
      image  = "registry.example.net/web/app@sha256:0000000000000000000000000000000000000000000000000000000000000000"
      engine = "dockr"
    }
    container "badpin" {
      digest = "sha256:ABC"
      image  = "registry.example.net/web/app:1.4"
      network = "bridge"
      volumes = ["secrets:/secrets"]
    }
    container "app" {
      image = "registry.example.net/web/app:1.4"
      digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
    }
    container "ok" {
      image  = "registry.example.net/web/app:1.4"
      digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
    }
    file "/etc/containers/storage.conf" {
      content = "[storage]\ndriver = \"overlay\"\n"
    }
    file "/etc/systemd/system/drover-container-ok.service" {
      content = "[Service]\n"
    }
  }
}

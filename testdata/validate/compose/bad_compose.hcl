# expect: bad_compose.hcl:23:16 bad_compose.hcl:24:16 bad_compose.hcl:29:13 bad_compose.hcl:32:13 bad_compose.hcl:33:14 bad_compose.hcl:36:14 bad_compose.hcl:39:14 bad_compose.hcl:41:10 stack.yml:7:12 stack.yml:9:12 stack.yml:11:12 stack.yml:13:5 stack.yml:15:3 stack.yml:18:12
role "web" {
  image {
    base = "debian-bookworm"
    container "db" {
      image  = "registry.example.net/app/db:16"
      digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
      engine = "docker"
      start  = false
    }
    container "cache" {
      image  = "registry.example.net/app/cache:7"
      digest = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
    }
    container "web" {
      image  = "registry.example.net/app/web:1"
      digest = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
      engine = "docker"
    }
    container "bad" {
      image  = "registry.example.net/app/bad:1"
      digest = "sha256:4444444444444444444444444444444444444444444444444444444444444444"
      engine = "dockerd"
      start  = "sometimes"
    }
    compose "app" {
      file = "stack.yml"
    }
    compose "app" {
      file = "stack.yml"
    }
    compose "Other" {
      file = "notyaml.yml"
    }
    compose "gone" {
      file = "missing.yml"
    }
    compose "broken" {
      file = "notyaml.yml"
    }
    file "/etc/drover/compose/app/drover-images.yml" {
      content = "services: {}\n"
    }
  }
}

# expect: 4:12
role "web" {
  image {
    base = env("DROVER_TEST_BASE", "debian-bookworm", "extra")
  }
}

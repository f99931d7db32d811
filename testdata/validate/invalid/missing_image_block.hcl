# expect: 2:12
role "web" {
}

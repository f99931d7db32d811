# expect: 3:13
vault {
  address = env("DROVER_TEST_SURELY_UNSET_ADDR")
}

# expect: 3:17
drover {
  keep_images = -1
}

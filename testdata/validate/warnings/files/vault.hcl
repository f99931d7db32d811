ui = false

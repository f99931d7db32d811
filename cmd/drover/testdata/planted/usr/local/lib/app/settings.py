# planted by drover's e2e test (cmd/drover/scan_e2e_test.go): a made-up value, not a credential
DEBUG = False
SECRET_KEY = 'q8Zr3Lx0Vt7Nw2Kp5Jy9Hb4Mc6Gd1Fs8Qa3We7Rt'

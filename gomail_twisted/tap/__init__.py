# -*- test-case-name: tests.test_tap_smtp -*-
"""
The C{twistd} glue: one module per service, each with an C{Options} class and
a C{makeService(options)} function, found through the plugin file in
C{twisted/plugins/gomail_twisted_plugins.py}.
"""

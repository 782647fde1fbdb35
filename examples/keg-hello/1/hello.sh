#!/bin/sh
echo "hello from keg ($(cat /etc/keg/base-release))"

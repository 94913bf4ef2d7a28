# mailops.mailstack: the two commands of the README, and their parts.
#   make demo        set up, start the lab, converge site.yml on it, summarise
#   make demo-clean  remove the lab containers and network
#   make test        the whole test suite (what CI runs)
#   make test-nfs    the nfs_shared scenario (VMs), outside the suite's budget
#   make test-faults the sharded scenario's fault cases and 20 moves under load
SHELL := /bin/bash
VENV := .venv/bin
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.cache/collections
LAB_INVENTORY := inventories/lab/hosts.yml

.PHONY: setup lab demo demo-clean test test-nfs test-faults lint sanity units molecule build awx-templates

setup:
	scripts/setup.sh

# What the demo needs: host packages and the containers' base image (not
# the NFS scenario's VM image, which `make test-nfs` builds).
lab: setup
	scripts/lab.sh prepare
	scripts/lab.sh image

demo: lab
	ansible-playbook -i $(LAB_INVENTORY) playbooks/lab.yml
	ansible-playbook -i $(LAB_INVENTORY) playbooks/site.yml
	ansible-playbook -i $(LAB_INVENTORY) playbooks/demo.yml

demo-clean: setup
	ansible-playbook -i $(LAB_INVENTORY) playbooks/lab.yml -e lab_state=absent

test:
	scripts/test.sh

# The nfs_shared scenario (QEMU VMs; not in `make test`, see README).
test-nfs:
	scripts/test.sh prepare nfs

# The moves' fault cases and the loop of moves under load (docs/lab.md).
test-faults:
	scripts/test.sh prepare faults

lint sanity units molecule: setup
	scripts/test.sh $@

build: setup
	ansible-galaxy collection build --force --output-path build/

# AWX job templates (awx/job_templates.yml) from the argument specs.
awx-templates: setup
	$(VENV)/python scripts/awx_templates.py

"""The words the receptionist speaks: prompt and phrase templates, loaded by `agent.prompting`."""

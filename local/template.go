package main

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Function is one AWS::Serverless::Function of template.yaml as the local
// stack runs it.
type Function struct {
	Name   string            // logical id, such as UploadFunction
	Dir    string            // CodeUri, such as functions/upload
	Env    map[string]string // Globals and own variables, resolved
	Routes []Route           // HttpApi events
	Queues []string          // logical ids of SQS event sources
}

// Route is one HttpApi event.
type Route struct {
	Method, Path string
	Scopes       []string // AuthorizationScopes; any one suffices
}

// Template is what the local stack reads of template.yaml.
type Template struct {
	Functions []*Function
}

// resolver turns template values into strings: literals as they are,
// !Ref of a parameter as its default, !Ref of a resource as the local
// stack's name for it. Anything else cannot be resolved locally.
type resolver struct {
	params    map[string]string
	resources map[string]string
}

func (r resolver) value(n *yaml.Node) (string, bool) {
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!Ref":
		if v, ok := r.params[n.Value]; ok {
			return v, true
		}
		v, ok := r.resources[n.Value]
		return v, ok
	case n.Kind == yaml.ScalarNode && !strings.HasPrefix(n.Tag, "!"):
		return n.Value, true
	case n.Kind == yaml.SequenceNode && n.Tag == "!Ref":
		return "", false
	}
	return "", false
}

func child(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func path(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		n = child(n, k)
	}
	return n
}

func entries(n *yaml.Node) [][2]*yaml.Node {
	var out [][2]*yaml.Node
	if n == nil || n.Kind != yaml.MappingNode {
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, [2]*yaml.Node{n.Content[i], n.Content[i+1]})
	}
	return out
}

// LoadTemplate reads the functions of a SAM template. resources names the
// local stand-ins of the template's resources, by logical id.
func LoadTemplate(file string, resources map[string]string) (*Template, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading template: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", file, err)
	}
	root := doc.Content[0]
	r := resolver{params: map[string]string{}, resources: resources}
	for _, p := range entries(child(root, "Parameters")) {
		if d := child(p[1], "Default"); d != nil {
			r.params[p[0].Value] = d.Value
		}
	}
	globalEnv := map[string]string{}
	for _, v := range entries(path(root, "Globals", "Function", "Environment", "Variables")) {
		if s, ok := r.value(v[1]); ok {
			globalEnv[v[0].Value] = s
		}
	}
	t := &Template{}
	for _, res := range entries(child(root, "Resources")) {
		if child(res[1], "Type").Value != "AWS::Serverless::Function" {
			continue
		}
		props := child(res[1], "Properties")
		f := &Function{Name: res[0].Value, Env: map[string]string{}}
		if c := child(props, "CodeUri"); c != nil {
			f.Dir = c.Value
		}
		for k, v := range globalEnv {
			f.Env[k] = v
		}
		for _, v := range entries(path(props, "Environment", "Variables")) {
			if s, ok := r.value(v[1]); ok {
				f.Env[v[0].Value] = s
			}
		}
		for _, ev := range entries(child(props, "Events")) {
			evProps := child(ev[1], "Properties")
			switch child(ev[1], "Type").Value {
			case "HttpApi":
				rt := Route{Method: child(evProps, "Method").Value, Path: child(evProps, "Path").Value}
				if sc := path(evProps, "Auth", "AuthorizationScopes"); sc != nil {
					for _, s := range sc.Content {
						if v, ok := r.value(s); ok {
							rt.Scopes = append(rt.Scopes, v)
						}
					}
				}
				f.Routes = append(f.Routes, rt)
			case "SQS":
				if q := child(evProps, "Queue"); q != nil && len(q.Content) > 0 {
					f.Queues = append(f.Queues, strings.SplitN(q.Content[0].Value, ".", 2)[0])
				} else if q != nil {
					f.Queues = append(f.Queues, strings.SplitN(q.Value, ".", 2)[0])
				}
			}
		}
		t.Functions = append(t.Functions, f)
	}
	sort.Slice(t.Functions, func(i, j int) bool { return t.Functions[i].Name < t.Functions[j].Name })
	return t, nil
}

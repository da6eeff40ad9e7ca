package singleserver

import (
	"fmt"

	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// image makes sure a reference is on the engine. A name that exists
// locally is not pulled again by itself, so locally built or mirrored
// images work offline; with RefreshImages the registry's digest of the tag
// is a pull trigger, so a tag that now points to a new build (a patched
// nginx:1.30) is pulled on the next up. KeepLocally leaves the image there
// on destroy, since other stacks may use it.
func (b *builder) image(role, ref string) (pulumi.StringOutput, error) {
	args := &docker.RemoteImageArgs{Name: pulumi.String(ref), KeepLocally: pulumi.Bool(true)}
	if b.args.RefreshImages {
		latest, err := docker.LookupRegistryImage(b.ctx, &docker.LookupRegistryImageArgs{Name: ref}, pulumi.Parent(b.parent))
		if err != nil {
			return pulumi.StringOutput{}, fmt.Errorf("looking up %s in its registry (docker.refreshImages true; set it false for images that exist only on the host): %w", ref, err)
		}
		args.PullTriggers = pulumi.StringArray{pulumi.String(latest.Sha256Digest)}
	}
	img, err := docker.NewRemoteImage(b.ctx, b.name+"-"+role+"-image", args, b.opts(imageReplacement)...)
	if err != nil {
		return pulumi.StringOutput{}, err
	}
	return img.ImageId, nil
}

// imageReplacement makes a new image (a release's app.image) create-first,
// not the delete-first every other child gets (opts): an image is no named
// Docker object that two cannot share, and deleting it first meant
// deleting first everything that uses it: a new app.image removed the
// running replicas before the new release's migration had even run
// (TestRollbackOnRealDocker: a release whose migration then failed left
// no replica at all, 504s). Created first, the old image resource goes at
// the end of the update, after the new replicas are healthy, or never
// when the update fails; KeepLocally leaves the image itself on the host.
var imageReplacement = pulumi.DeleteBeforeReplace(false)

// buildAppImage builds the app from its Dockerfile on the engine (no push:
// the single server runs what it built), or takes the reference as it is.
func (b *builder) buildAppImage() error {
	ref := b.args.Service.Image
	if ref.BuildContext == "" {
		var err error
		b.appImage, err = b.image("app", ref.Ref)
		return err
	}
	img, err := docker.NewImage(b.ctx, b.name+"-app-build", &docker.ImageArgs{
		ImageName: pulumi.String(ref.Ref),
		SkipPush:  pulumi.Bool(true),
		Build: docker.DockerBuildArgs{
			Context:    pulumi.String(ref.BuildContext),
			Dockerfile: pulumi.String(ref.BuildContext + "/" + ref.Dockerfile),
		},
	}, b.opts(imageReplacement)...)
	if err != nil {
		return err
	}
	b.appImage = img.ImageName
	return nil
}

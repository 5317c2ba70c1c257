//! Dimension arguments: every op takes `usize`, `isize` or a bare literal,
//! negative values counting from the end.

use matnet::Tensor;

#[test]
fn usize_isize_and_negative_dims_agree() {
    let x = Tensor::arange(24).reshape([2, 3, 4]);
    let (u, i): (usize, isize) = (2, -1);
    assert_eq!(x.narrow(u, 1, 2).to_vec(), x.narrow(i, 1, 2).to_vec());
    assert_eq!(x.softmax(u).to_vec(), x.softmax(-1).to_vec());
    assert_eq!(x.dim(-3), x.dim(0usize));
    assert_eq!(x.unsqueeze(-1).dims(), &[2, 3, 4, 1]);
    assert_eq!(x.unsqueeze(0).dims(), &[1, 2, 3, 4]);
    assert_eq!(
        Tensor::stack(&[x.clone(), x.clone()], -1).dims(),
        &[2, 3, 4, 2]
    );
    let idx = Tensor::from_vec(vec![0., 0., 3.], [3]);
    let src = Tensor::ones([2, 3, 3]);
    assert_eq!(
        x.index_add(-1, &idx, &src).to_vec(),
        x.index_add(2usize, &idx, &src).to_vec()
    );
    assert_eq!(
        x.index_select(-1, &idx).to_vec(),
        x.index_select(2usize, &idx).to_vec()
    );
}

#[test]
#[should_panic(expected = "unsqueeze: axis 5 out of range for shape [2, 3, 4]")]
fn a_new_axis_past_the_end_panics() {
    Tensor::zeros([2, 3, 4]).unsqueeze(5);
}
